"""Offer lifecycle: what the engine proposes becomes a booked contract.

``lifecycle``: the rules (:func:`~repayplan.offers.lifecycle.decide`) and the writer's side
(offers, audit, booking, undo, expiry); ``handlers``: the event-inbox handlers that apply what
the service records; ``quotes``: offers for a stored loan from a reported hardship;
``prepayment``: what a prepayment does to the contract in force; ``keys``: API keys (stored
hashed); ``view``: the service's read of offers (the published copy plus its own pending
events). Above ``portfolio``; knows nothing of HTTP.
"""
