from tests.engine.conftest import make_api, shop_lake

__all__ = ["make_api", "shop_lake"]
