/**
 * Real Mailjet exchanges, transcribed as data: each request and the reply that was recorded for
 * it, with where it was recorded. Bodies are verbatim (spacing included); ids in paths are
 * written as `{list}` (a list that exists), `{deletable}` (a list the recording deletes) and
 * `{email}` (a contact that exists), so they can be replayed against the simulator.
 *
 * Sources: VCR = mailjet/mailjet-gem `spec/cassettes/` (recorded live, 2020–2023); issues as
 * `repo#N` on GitHub.
 */

export interface RecordedRequest {
  readonly method: "GET" | "POST" | "DELETE"
  readonly path: string
  readonly body?: string
  /** Sent with credentials Mailjet refuses. */
  readonly badCredentials?: true
}

export interface RecordedResponse {
  readonly status: number
  readonly contentType: string
  readonly body: string
}

/** What our client makes of this reply when it answers the call named. */
export interface ClientOutcome {
  readonly call: "manageContact" | "getList"
  readonly tag: "Unauthorized" | "ListNotFound" | "RateLimited" | "MailjetUnavailable" | "InvalidContact"
  /** Text the error's message must contain. */
  readonly says?: string
}

export interface Recording {
  readonly name: string
  readonly source: string
  /** In order; later ones see the state the earlier ones left. */
  readonly exchanges: ReadonlyArray<{ readonly request: RecordedRequest; readonly response: RecordedResponse }>
  /** False when the simulator only produces it as an injected fault (429, 500) or never (a proxy's page). */
  readonly replayOnSimulator: boolean
  readonly client?: ClientOutcome
}

const LIST_38778 =
  "{ \"Count\" : 1, \"Data\" : [{ \"Address\" : \"twkgdlfxg\", \"CreatedAt\" : \"2020-11-06T13:38:49Z\", \"ID\" : 38778, \"IsDeleted\" : false, \"Name\" : \"Test List\", \"SubscriberCount\" : 0 }], \"Total\" : 1 }"

export const RECORDINGS: ReadonlyArray<Recording> = [
  {
    name: "create a list",
    source: "VCR Mailjet_API_Resource/creates_new_contact_lists.yml",
    replayOnSimulator: true,
    exchanges: [{
      request: { method: "POST", path: "/v3/REST/contactslist", body: "{\"Name\":\"Test List\"}" },
      response: { status: 201, contentType: "application/json", body: LIST_38778 }
    }]
  },
  {
    name: "read a list by id",
    source: "VCR Mailjet_API_Resource/it_retrieves_lists_by_id.yml",
    replayOnSimulator: true,
    exchanges: [{
      request: { method: "GET", path: "/v3/REST/contactslist/{list}" },
      response: { status: 200, contentType: "application/json", body: LIST_38778 }
    }]
  },
  {
    name: "delete a list, then read it",
    source: "VCR Mailjet_API_Resource/deletes_list_fields.yml",
    replayOnSimulator: true,
    client: { call: "getList", tag: "ListNotFound", says: "deleted" },
    exchanges: [
      {
        request: { method: "DELETE", path: "/v3/REST/contactslist/{deletable}" },
        response: { status: 204, contentType: "application/json", body: "" }
      },
      {
        request: { method: "GET", path: "/v3/REST/contactslist/{deletable}" },
        response: {
          status: 200,
          contentType: "application/json",
          body:
            "{ \"Count\" : 1, \"Data\" : [{ \"Address\" : \"twkgdlfxg\", \"CreatedAt\" : \"2020-11-06T13:38:49Z\", \"ID\" : 38778, \"IsDeleted\" : true, \"Name\" : \"Test List\", \"SubscriberCount\" : 0 }], \"Total\" : 1 }"
        }
      }
    ]
  },
  {
    name: "define a contact property",
    source: "VCR Mailjet_Contactmetadata/_persisted_/returns_true_for_created_resource.yml",
    replayOnSimulator: true,
    exchanges: [{
      request: { method: "POST", path: "/v3/REST/contactmetadata", body: "{\"Datatype\":\"str\",\"Name\":\"middle_name\",\"NameSpace\":\"static\"}" },
      response: {
        status: 201,
        contentType: "application/json",
        body: "{ \"Count\" : 1, \"Data\" : [{ \"Datatype\" : \"str\", \"ID\" : 65942, \"Name\" : \"middle_name\", \"NameSpace\" : \"static\" }], \"Total\" : 1 }"
      }
    }]
  },
  {
    name: "an unknown contact",
    source: "VCR Mailjet_Contact/_find/returns_nil_when_contact_not_found.yml",
    replayOnSimulator: true,
    // The same 404 answering managecontact and the list re-check: the list is missing.
    client: { call: "manageContact", tag: "ListNotFound", says: "MAILJET_LIST_ID" },
    exchanges: [{
      request: { method: "GET", path: "/v3/REST/contact/unknown@example.com" },
      response: {
        status: 404,
        contentType: "application/json",
        body: "{ \"ErrorInfo\" : \"\", \"ErrorMessage\" : \"Object not found\", \"StatusCode\" : 404 }"
      }
    }]
  },
  {
    name: "a contact's lists",
    source: "VCR Mailjet_Contact_getcontactslists/_find/returns_collection_when_there_is_only_one_record.yml",
    replayOnSimulator: true,
    exchanges: [{
      request: { method: "GET", path: "/v3/REST/contact/{email}/getcontactslists" },
      response: {
        status: 200,
        contentType: "application/json",
        body: "{ \"Count\" : 1, \"Data\" : [{ \"IsActive\" : true, \"IsUnsub\" : false, \"ListID\" : 32964, \"SubscribedAt\" : \"2020-10-22T08:04:45Z\" }], \"Total\" : 1 }"
      }
    }]
  },
  {
    name: "list recipients",
    source: "VCR Mailjet_Resource/listrecipient/should_not_be_nil.yml",
    replayOnSimulator: true,
    exchanges: [{
      request: { method: "GET", path: "/v3/REST/listrecipient?Limit=1" },
      response: {
        status: 200,
        contentType: "application/json",
        body:
          "{ \"Count\" : 1, \"Data\" : [{ \"ContactID\" : 254509966, \"ID\" : 225690164, \"IsActive\" : true, \"IsUnsubscribed\" : false, \"ListID\" : 36735, \"ListName\" : \"MyFirstTest\", \"SubscribedAt\" : \"2021-06-20T09:20:44Z\", \"UnsubscribedAt\" : \"\" }], \"Total\" : 1 }"
      }
    }]
  },
  {
    name: "contact data of a fresh account",
    source: "VCR Mailjet_Resource/contactdata/should_not_be_nil.yml",
    replayOnSimulator: true,
    exchanges: [{
      request: { method: "GET", path: "/v3/REST/contactdata?Limit=1" },
      response: {
        status: 200,
        contentType: "application/json",
        body:
          "{ \"Count\" : 1, \"Data\" : [{ \"ContactID\" : 254509966, \"Data\" : [{ \"Name\" : \"firstname\", \"Value\" : \"Value\" }, { \"Name\" : \"name\", \"Value\" : \"Value\" }, { \"Name\" : \"country\", \"Value\" : \"Value\" }, { \"Name\" : \"newsletter_sub\", \"Value\" : \"N\" }], \"ID\" : 254509966, \"MethodCollection\" : \"\" }], \"Total\" : 1 }"
      }
    }]
  },
  {
    name: "wrong credentials",
    source: "VCR Mailjet_Resource/invalid_credentials/should_raise_api_connection_error.yml",
    replayOnSimulator: true,
    client: { call: "manageContact", tag: "Unauthorized", says: "MAILJET_SECRET_KEY" },
    exchanges: [{
      request: { method: "GET", path: "/v3/REST/apikey?Limit=1", badCredentials: true },
      response: { status: 401, contentType: "text/html", body: "" }
    }]
  },
  {
    name: "an unknown module",
    source: "VCR Mailjet_API_Resource/the_resource_path_does_not_exist/raises_an_error.yml",
    replayOnSimulator: true,
    client: { call: "manageContact", tag: "MailjetUnavailable", says: "HTTP 500" },
    exchanges: [{
      request: { method: "GET", path: "/v3/wrongresourcepath" },
      response: {
        status: 500,
        contentType: "application/json",
        body: "{ \"ErrorInfo\" : \"EFPWebError\", \"ErrorMessage\" : \"Could not determine HTTP module for request \\\"wrongresourcepath\\\"\", \"StatusCode\" : 500 }"
      }
    }]
  },
  {
    name: "managecontact with an empty body",
    source: "mailjet/mailjet-gem#48 (a live reply, 2015)",
    replayOnSimulator: true,
    client: { call: "manageContact", tag: "InvalidContact", says: "MJ08 Property email is invalid" },
    exchanges: [{
      request: { method: "POST", path: "/v3/REST/contactslist/{list}/managecontact", body: "{}" },
      response: {
        status: 400,
        contentType: "application/json",
        body:
          "{ \"ErrorMessage\" : \"Object properties invalid\", \"StatusCode\" : 400, \"ErrorInfo\" : { \"Email\" : \"MJ08 Property email is invalid: MJ03 A non-empty value is required\", \"Action\" : \"Invalid action: \" } }"
      }
    }]
  },
  {
    name: "a 500 with its ErrorIdentifier",
    source: "mailjet/mailjet-apiv3-php#123 (the reply; the issue does not show the request)",
    replayOnSimulator: false,
    client: { call: "manageContact", tag: "MailjetUnavailable", says: "A8EBD4F2-69F4-4DFA-9547-EB4B5EF48D93" },
    exchanges: [{
      request: { method: "POST", path: "/v3/REST/contactslist/{list}/managecontact", body: "{}" },
      response: {
        status: 500,
        contentType: "application/json",
        body:
          "{\"ErrorIdentifier\": \"A8EBD4F2-69F4-4DFA-9547-EB4B5EF48D93\", \"ErrorInfo\": \"\", \"ErrorMessage\": \"An Unexpected Error occurred during API request\", \"StatusCode\": 500}"
      }
    }]
  },
  {
    name: "rate limited",
    source: "mailjet/mailjet-apiv3-nodejs#178 (the reply's first line; the request is ours)",
    replayOnSimulator: false,
    client: { call: "getList", tag: "RateLimited", says: "429" },
    exchanges: [{
      request: { method: "GET", path: "/v3/REST/contactslist/{list}" },
      response: { status: 429, contentType: "text/html", body: "<html><body><h1>429 Too Many Requests</h1>" }
    }]
  },
  {
    name: "the wrong API version",
    source: "VCR Mailjet_API_Resource/API_responds_with_non_JSON_content_type/raises_an_error.yml",
    replayOnSimulator: true,
    client: { call: "getList", tag: "ListNotFound" },
    exchanges: [{
      request: { method: "GET", path: "/v3.1/REST/contactslist" },
      response: {
        status: 404,
        contentType: "text/html",
        body:
          "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body bgcolor=\"white\">\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
      }
    }]
  }
]
