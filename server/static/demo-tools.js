// The dashboard's demo tools: declared to the model, run in this page by the client's tool loop.

const NUMBER = /^\d+(?:\.\d+)?$/;

/**
 * Evaluates an arithmetic expression: numbers, + - * / % ^ (power, right-associative), unary
 * minus and parentheses. No eval: anything else is an error the model gets back.
 */
export function calculate(expression) {
  const tokens = String(expression).match(/\d+(?:\.\d+)?|\S/g) ?? [];
  let i = 0;
  const take = (...ops) => (ops.includes(tokens[i]) ? tokens[i++] : null);
  const sum = () => {
    let value = product();
    for (let op; (op = take("+", "-")); ) value = op === "+" ? value + product() : value - product();
    return value;
  };
  const product = () => {
    let value = power();
    for (let op; (op = take("*", "/", "%")); ) {
      const right = power();
      value = op === "*" ? value * right : op === "/" ? value / right : value % right;
    }
    return value;
  };
  const power = () => {
    const base = unary();
    return take("^") ? base ** power() : base;
  };
  const unary = () => (take("-") ? -unary() : take("+") ? unary() : atom());
  const atom = () => {
    if (take("(")) {
      const value = sum();
      if (!take(")")) throw new SyntaxError(`expected ")" in ${expression}`);
      return value;
    }
    const token = tokens[i++];
    if (token !== undefined && NUMBER.test(token)) return Number(token);
    throw new SyntaxError(token === undefined ? `${expression} ends too early` : `unexpected "${token}" in ${expression}`);
  };
  const value = sum();
  if (i < tokens.length) throw new SyntaxError(`unexpected "${tokens[i]}" in ${expression}`);
  if (!Number.isFinite(value)) throw new RangeError(`${expression} has no finite value`);
  return value;
}

const ZONES = ["UTC", "Europe/London", "Europe/Paris", "America/New_York", "Asia/Tokyo"];

export const DEMO_TOOLS = {
  calculator: {
    description: "Evaluates an arithmetic expression (+ - * / % ^ and parentheses) and returns its value.",
    parameters: {
      type: "object",
      properties: { expression: { type: "string", description: "the expression, e.g. (17+4)*2" } },
      required: ["expression"],
    },
    execute: ({ expression }) => calculate(expression),
  },
  clock: {
    description: "Tells the current date and time in a time zone.",
    parameters: {
      type: "object",
      properties: { timezone: { type: "string", enum: ZONES, description: "an IANA time zone" } },
      required: ["timezone"],
    },
    execute: ({ timezone }) => {
      const now = new Date();
      const time = now.toLocaleString("en-GB", { timeZone: timezone, dateStyle: "full", timeStyle: "long" });
      return { timezone, time, iso: now.toISOString() };
    },
  },
};

/** The example schema the form starts with. */
export const EXAMPLE_SCHEMA = {
  type: "object",
  properties: {
    name: { type: "string" },
    age: { type: "integer", minimum: 0, maximum: 150 },
    languages: { type: "array", items: { type: "string" }, maxItems: 3 },
    role: { type: "string", enum: ["engineer", "designer", "manager"] },
  },
  required: ["name", "age", "role"],
};
