"""The public market page of a pair, `/market/<PAIR>/`: depth chart, order book ladder and the tape, kept live by
the browser from the public stream `ws/market/<PAIR>/` (the same one any client reads), with the connection's
state, the last sequence applied and whether the book's checksum matches the server's."""
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from exchange.trading.pairs import pair_by_symbol


def websocket_url(request: HttpRequest) -> str:
    """Where the browser reaches the websocket server: WEBSOCKET_URL when set (behind an ingress, the site's own
    address), else this host on WEBSOCKET_PORT (`run_exchange` serves websockets on the next port)."""
    if settings.WEBSOCKET_URL:
        return settings.WEBSOCKET_URL.rstrip("/")
    scheme = "wss" if request.is_secure() else "ws"
    return f"{scheme}://{request.get_host().rsplit(':', 1)[0]}:{settings.WEBSOCKET_PORT}"


def market(request: HttpRequest, symbol: str) -> HttpResponse:
    pair = pair_by_symbol(symbol.upper())
    if pair is None:
        raise Http404(f"unknown pair {symbol!r}")
    return render(request, "exchange/market.html", {"pair": pair, "websocket_url": websocket_url(request)})
