"""ORM benchmark: covet against the raw drivers, SQLAlchemy 2 and Tortoise ORM."""
