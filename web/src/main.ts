// Entry point of the dApp (the views are built in src/views/).
const app = document.getElementById("app");
if (app) app.textContent = "BlendrChain";
