"""loadgen: shoppers that keep the mesh busy, so dashboards, canaries and circuit breakers have traffic to show.

config    settings from the environment (GATEWAY_URL, LOADGEN_*, METRICS_PORT)
pacer     one shared request rate over all shoppers
client    calls to the gateway: timing, outcome, the Prometheus metrics and the summary figures of each call
journeys  what a shopper does in one visit: browse, look at products, fill a cart, check out
stats     the figures behind the periodic summary (requests, errors by status, checkouts by version, latency)
runner    waits for the gateway, runs the shoppers, prints summaries, stops cleanly on SIGTERM/SIGINT
"""
