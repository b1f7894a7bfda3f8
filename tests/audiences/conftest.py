from tests.engine.conftest import db_url, make_api, shop_lake

__all__ = ["db_url", "make_api", "shop_lake"]
