//! GS1 identifiers: parsing, validation and conversion of everything a pharma
//! scanner reads (element strings, bracketed strings, Digital Link URIs, keyed-in keys).
