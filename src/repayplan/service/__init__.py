"""The HTTP service: quotes, the offer lifecycle and the borrower page (FastAPI)."""
