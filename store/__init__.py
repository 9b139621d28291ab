"""The database: schema and migrations (SQL files), connection pool, writers and read queries.

The only package with SQL. Imports nothing of ours.
"""
