"""Building blocks of the E5-Mistral recipe: synthesis (`recipe.synth`), training and evaluation."""
