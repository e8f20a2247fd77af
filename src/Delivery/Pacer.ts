/** The Pacer moved to Mailjet/Pacer.ts (it paces Mailjet calls); kept so older imports still compile. */
export { Pacer } from "../Mailjet/Pacer.js"
