"""Local stand-ins for what svcbot talks to (the Kubernetes API, Loki, Slack) and the stack that starts them
together, for the tests, `svcbot sandbox` and `svcbot demo`."""
