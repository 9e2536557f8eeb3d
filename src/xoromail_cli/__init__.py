"""xoromail: set up, prove and use the ERP's outgoing company email account."""

__version__ = "0.1.0"
