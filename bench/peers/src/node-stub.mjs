// Node built-ins that vectra's file storage and protobuf codec import but the browser build never calls.
export default {};
