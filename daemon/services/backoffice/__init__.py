"""The shop's back office: accounts and logins, the catalogue, orders and sales reports."""
