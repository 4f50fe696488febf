"""DSRIR: the progressive network with uncertainty, its three losses, its model classes and the authors' key map."""
