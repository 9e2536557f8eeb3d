"""The Exchange (EWS) service: on-premises Exchange Server 2016/2019 through exchangelib.

Only `transport` (and `hints`/`https`, which it uses) import exchangelib, inside their functions, so importing
this package or its settings costs nothing at start-up.
"""
