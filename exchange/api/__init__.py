"""The REST toolkit every API of the project shares: amount fields, the strict serializer, the JSON error and its
middleware, the schema's error answers, token authentication and the rate limits. It imports only the ground
floor (and the app's models)."""
