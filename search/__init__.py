"""The search core: reading an index directory and answering at any feature budget."""
