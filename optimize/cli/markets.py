"""``python -m optimize markets``: save an exchange's markets of some pairs to a markets file that
a run config names as ``data.markets`` (needs network access to the exchange)."""

from __future__ import annotations

import argparse


def cmd_markets(args: argparse.Namespace) -> int:
    from optimize.cli._options import check_output
    from optimize.freqtrade.markets import fetch_markets
    from optimize.markets import save_markets

    check_output(args.out, "--out")  # before the exchange is asked: nothing fetched in vain
    markets = fetch_markets(args.pairs, args.trading_mode, args.exchange)
    path = save_markets(args.out, markets, exchange=args.exchange, trading_mode=args.trading_mode)
    print(
        f"saved {args.exchange} {args.trading_mode} markets of {', '.join(markets)} to {path}; "
        f"name it in the run config as data.markets: {path}"
    )
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``markets``."""
    p = sub.add_parser(
        "markets",
        help="save the exchange's markets of some pairs (freqtrade's exchange class, network)",
    )
    p.add_argument(
        "--pairs",
        nargs="+",
        required=True,
        help="pairs, e.g. BNB/USDT (spot) or BNB/USDT:USDT (futures)",
    )
    p.add_argument(
        "--trading-mode", choices=("spot", "futures"), default="spot", help="(default: spot)"
    )
    p.add_argument("--exchange", default="binance", help="exchange name (default: binance)")
    p.add_argument("--out", required=True, help="markets file to write (JSON)")
    p.set_defaults(func=cmd_markets)
