"""The Rhime operator: one RhimeDeployment custom resource becomes the whole platform."""
