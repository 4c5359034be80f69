"""Who spoke when: speech windows, their embeddings, clustering, turns."""
