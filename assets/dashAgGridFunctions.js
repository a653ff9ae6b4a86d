// Cell formatters for the AG Grid tables (dashboard/tables.py names them in each column's
// valueFormatter as {"function": "fbDays(params.value)"}). dash-ag-grid runs such strings with its
// own expression interpreter over window.dashAgGridFunctions, so no eval is needed and the app's
// Content-Security-Policy (no 'unsafe-eval') holds. They change what a cell shows, never the data:
// the CSV export keeps every value at full precision.
var dagfuncs = (window.dashAgGridFunctions = window.dashAgGridFunctions || {});

var grouped = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
var money = new Intl.NumberFormat("en-US", { minimumFractionDigits: 0, maximumFractionDigits: 2 });

// Any text cell: a boolean as Yes/No, anything else as it is.
dagfuncs.fbText = function (value) {
    if (value === true) return "Yes";
    if (value === false) return "No";
    return value == null ? "" : String(value);
};

dagfuncs.fbYesNo = function (value) {
    return value == null ? "" : value ? "Yes" : "No";
};

// Ages and thresholds in whole days (rounded down: 49.9 days old is 49 days old), with separators.
dagfuncs.fbDays = function (value) {
    return value == null || value === "" ? "" : grouped.format(Math.floor(Number(value)));
};

// An amount with thousands separators (cents only when there are any), with the currency code when one is given.
dagfuncs.fbMoney = function (value, currency) {
    if (value == null || value === "") return "";
    var text = money.format(Number(value));
    return currency ? currency + " " + text : text;
};
