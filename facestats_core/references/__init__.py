"""Reference sets: labelled face sets the models are trained on, processed like the analysed set."""
