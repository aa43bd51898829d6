"""The outbox: enqueue, route, dispatch; nothing is sent without first being written down."""
