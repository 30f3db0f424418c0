//! Placeholder: reports land with issue 7.
