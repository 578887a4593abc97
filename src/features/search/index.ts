// What other features may use of search: the statement that adds a stored message's words to the index.
export { indexMessage } from "./search.terms";
