"""Too Good To Go's consumer API: the wire (client.py) and its errors (errors.py)."""
