"""Cases: the HTCDS 2.0 field standard and the records built from submissions."""
