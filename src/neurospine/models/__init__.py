"""Model cards and the registry of shipped weights."""

from neurospine.models.card import ModelCard
from neurospine.models.registry import list_cards, load_card, weights_path

__all__ = ["ModelCard", "list_cards", "load_card", "weights_path"]
