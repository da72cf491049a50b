"""Application tags "auf kurzem Dienstweg": a benefit application a coach helped with, its
look-up by code, the processing office's steps and document requests, and the stamp. Beside
referrals on the same floor; neither imports the other."""
