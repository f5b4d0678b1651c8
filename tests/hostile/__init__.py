"""The hostile suite: every lab endpoint faces abusive clients and must keep serving others."""
