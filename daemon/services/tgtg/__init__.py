"""The TGTG favourites watcher: logins, polling inside a request budget, and alerts."""
