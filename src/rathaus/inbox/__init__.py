"""Posteingang: the smart inbox that triages letters, e-mails, forms and reports."""
