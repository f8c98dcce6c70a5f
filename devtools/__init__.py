"""This repository's own tooling (demo and test infrastructure); not part of the shipped labship package."""
