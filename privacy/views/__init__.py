"""The console's pages, one module per part (the trail, data subjects, flags, ...)."""
