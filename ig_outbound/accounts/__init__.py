"""The account registry: which IG accounts the fleet sends for, their tokens (encrypted at
rest), their expiry and refresh state, and the operator actions on them."""
