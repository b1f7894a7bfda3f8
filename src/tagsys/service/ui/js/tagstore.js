// The tag definitions (names, categories, versions), shared by the pages; re-read after a
// short while or when a page changed them.

import { get } from "./api.js";

const FRESH_MS = 5000;
let cached = null;
let readAt = 0;

export async function loadTags({ force = false } = {}) {
  if (!force && cached && Date.now() - readAt < FRESH_MS) return cached;
  const data = await get("/api/v1/tags");
  cached = data.tags;
  readAt = Date.now();
  return cached;
}

export function forgetTags() {
  cached = null;
}

export function tagName(tags, id) {
  const found = tags.find((tag) => tag.tag_id === id);
  return found ? found.name : `#${id}`;
}
