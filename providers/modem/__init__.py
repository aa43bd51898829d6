"""A GSM/LTE modem on a serial port: the AT driver, the PDU codec and a simulator."""
