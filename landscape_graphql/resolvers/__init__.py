"""Resolvers: fetch domain records for the schema through the request's loaders.

They take the request `Context` and return records from `db.records`, never GraphQL types; the
schema modules decide how a record is shown.
"""
