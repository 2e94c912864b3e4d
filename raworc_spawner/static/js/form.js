// Forms: after a failed submit, move focus to the error summary so it is read out first.
document.getElementById("error-summary")?.focus();
