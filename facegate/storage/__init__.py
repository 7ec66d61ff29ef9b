"""The enrollment registry: SQLAlchemy models, migrations, and the repository API."""
