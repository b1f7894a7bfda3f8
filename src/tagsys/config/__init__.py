"""Environment config files (`<env>.toml`) and Spark logging settings."""
