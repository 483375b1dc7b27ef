"""/svc watch: incidents found in the clusters and announced to the channels that watch them.

`book.py` (subscriptions, incidents and what their messages owe Slack, in the store), `detect.py` (what is
wrong, from the objects), `streams.py` (watch streams per cluster, namespace and kind), `watcher.py` (the
streams the subscriptions need, and incidents judged from them, on the leader), `logs.py` (an incident's
last error lines from Loki). Slack delivery is bot/slack/incidents.py; the verbs are commands/watch*.py.
"""
