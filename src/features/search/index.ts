// What other features may use of search: the statement that adds a stored message's words to the index,
// and the housekeeping's backfill of messages stored without them.
export { indexMessage, indexMissingWords } from "./search.terms";
