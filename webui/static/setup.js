// The wizard's Print button (no inline script: the Content-Security-Policy allows only this box's files).
document.getElementById("print").addEventListener("click", () => window.print());
