"""Pairs and orders: the cached pairs and the demo pairs, placing, cancelling and reducing orders (the only writer
of orders on the web's side), their serializers and the views of `/api/orders/` and `/api/pairs/`."""
