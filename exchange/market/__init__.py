"""Market data end to end: the contract between the worker (the only publisher) and the web, the readers of the
published state and of the tables, the REST market data, the websocket streams, the market page, and the
operator's republish."""
