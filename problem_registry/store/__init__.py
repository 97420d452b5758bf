"""The store: tables, engines, migrations, the content store and the registry's records."""
