"""Providers: the outside world (SMS, push, e-mail, TGTG) behind small async interfaces."""
