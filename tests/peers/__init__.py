"""Local fake services that speak the wire formats of Twilio, FCM, TGTG, Fast2SMS."""
