// Version "b" of the reload row's guest (see reload.js).
import { reloadGuest } from "./reload.js";

const guest = reloadGuest("b");
export const initEndpoint = guest.initEndpoint;
export const sqliteFunctionEndpoint = guest.sqliteFunctionEndpoint;
export const incomingHandler = guest.incomingHandler;
