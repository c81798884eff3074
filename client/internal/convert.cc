#include "client/internal/convert.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace tshare::client::internal {
namespace {

// Whole numbers up to this magnitude are exact in a double.
constexpr double kMaxExactInteger = 9007199254740992.0;  // 2^53

}  // namespace

absl::Status JsonToProto(const Json& json, google::protobuf::Value* out) {
  switch (json.type()) {
    case Json::value_t::null:
    case Json::value_t::discarded:
      out->set_null_value(google::protobuf::NULL_VALUE);
      return absl::OkStatus();
    case Json::value_t::boolean:
      out->set_bool_value(json.get<bool>());
      return absl::OkStatus();
    case Json::value_t::number_integer:
      out->set_number_value(static_cast<double>(json.get<int64_t>()));
      return absl::OkStatus();
    case Json::value_t::number_unsigned:
      out->set_number_value(static_cast<double>(json.get<uint64_t>()));
      return absl::OkStatus();
    case Json::value_t::number_float:
      out->set_number_value(json.get<double>());
      return absl::OkStatus();
    case Json::value_t::string:
      out->set_string_value(json.get_ref<const std::string&>());
      return absl::OkStatus();
    case Json::value_t::array: {
      google::protobuf::ListValue* list = out->mutable_list_value();
      for (const Json& element : json) {
        TSHARE_RETURN_IF_ERROR(JsonToProto(element, list->add_values()));
      }
      return absl::OkStatus();
    }
    case Json::value_t::object: {
      google::protobuf::Struct* object = out->mutable_struct_value();
      for (const auto& [name, member] : json.items()) {
        TSHARE_RETURN_IF_ERROR(
            JsonToProto(member, &(*object->mutable_fields())[name]));
      }
      return absl::OkStatus();
    }
    case Json::value_t::binary:
      break;
  }
  return absl::InvalidArgumentError(
      "a JSON binary value has no JSON text form; store raw bytes as Bytes "
      "instead");
}

Json JsonFromProto(const google::protobuf::Value& value) {
  switch (value.kind_case()) {
    case google::protobuf::Value::kNullValue:
    case google::protobuf::Value::KIND_NOT_SET:
      return Json(nullptr);
    case google::protobuf::Value::kNumberValue: {
      const double d = value.number_value();
      if (std::isfinite(d) && std::trunc(d) == d &&
          std::fabs(d) <= kMaxExactInteger) {
        return Json(static_cast<int64_t>(d));
      }
      return Json(d);
    }
    case google::protobuf::Value::kStringValue:
      return Json(value.string_value());
    case google::protobuf::Value::kBoolValue:
      return Json(value.bool_value());
    case google::protobuf::Value::kStructValue: {
      Json object = Json::object();
      for (const auto& [name, member] : value.struct_value().fields()) {
        object[name] = JsonFromProto(member);
      }
      return object;
    }
    case google::protobuf::Value::kListValue: {
      Json array = Json::array();
      for (const google::protobuf::Value& element :
           value.list_value().values()) {
        array.push_back(JsonFromProto(element));
      }
      return array;
    }
  }
  return Json(nullptr);
}

absl::Status ValueToProto(const Value& value, v1::Value* out) {
  switch (value.kind()) {
    case ValueKind::kInt:
      out->set_int_value(value.int_value());
      return absl::OkStatus();
    case ValueKind::kDouble:
      out->set_double_value(value.double_value());
      return absl::OkStatus();
    case ValueKind::kString:
      out->set_string_value(value.string_value());
      return absl::OkStatus();
    case ValueKind::kBool:
      out->set_bool_value(value.bool_value());
      return absl::OkStatus();
    case ValueKind::kBytes:
      out->set_bytes_value(value.bytes_value().data);
      return absl::OkStatus();
    case ValueKind::kJson:
      return JsonToProto(value.json_value(), out->mutable_json_value());
  }
  return absl::InternalError("value of an unknown kind");
}

absl::StatusOr<Value> ValueFromProto(const v1::Value& value) {
  switch (value.kind_case()) {
    case v1::Value::kIntValue:
      return Value::Int(value.int_value());
    case v1::Value::kDoubleValue:
      return Value::Double(value.double_value());
    case v1::Value::kStringValue:
      return Value::String(value.string_value());
    case v1::Value::kBoolValue:
      return Value::Bool(value.bool_value());
    case v1::Value::kBytesValue:
      return Value::FromBytes(Bytes{value.bytes_value()});
    case v1::Value::kJsonValue:
      return Value::FromJson(JsonFromProto(value.json_value()));
    case v1::Value::KIND_NOT_SET:
      break;
  }
  return absl::InternalError("the server sent a value without a kind");
}

absl::StatusOr<KeyValue> KeyValueFromProto(const v1::KeyValue& kv) {
  KeyValue out;
  out.key = kv.key();
  if (kv.has_value() && kv.value().kind_case() != v1::Value::KIND_NOT_SET) {
    TSHARE_ASSIGN_OR_RETURN(out.value, ValueFromProto(kv.value()));
  }
  out.version = kv.version();
  out.create_revision = kv.create_revision();
  out.mod_revision = kv.mod_revision();
  return out;
}

Loss LossFromProto(const v1::Loss& loss) {
  return Loss{.dropped = loss.dropped(),
              .conflated = loss.conflated(),
              .total_dropped = loss.total_dropped(),
              .total_conflated = loss.total_conflated()};
}

v1::OverflowPolicy PolicyToProto(OverflowPolicy policy) {
  switch (policy) {
    case OverflowPolicy::kDefault:
      return v1::OVERFLOW_POLICY_UNSPECIFIED;
    case OverflowPolicy::kConflate:
      return v1::CONFLATE;
    case OverflowPolicy::kDropOldest:
      return v1::DROP_OLDEST;
    case OverflowPolicy::kDropNewest:
      return v1::DROP_NEWEST;
    case OverflowPolicy::kClose:
      return v1::CLOSE;
  }
  return v1::OVERFLOW_POLICY_UNSPECIFIED;
}

absl::StatusOr<Versioned<Value>> FromProto(const v1::GetResponse& r) {
  Versioned<Value> out;
  TSHARE_ASSIGN_OR_RETURN(out.value, ValueFromProto(r.value()));
  out.version = r.version();
  out.revision = r.revision();
  out.create_revision = r.create_revision();
  out.mod_revision = r.mod_revision();
  out.store_id = r.store_id();
  return out;
}

WriteResult FromProto(const v1::SetResponse& r) {
  return WriteResult{.version = r.version(),
                     .revision = r.revision(),
                     .store_id = r.store_id(),
                     .created = r.created()};
}

absl::StatusOr<OpResult<Value>> FromProto(const v1::UpdateResponse& r) {
  OpResult<Value> out;
  TSHARE_ASSIGN_OR_RETURN(out.value, ValueFromProto(r.value()));
  out.version = r.version();
  out.revision = r.revision();
  out.store_id = r.store_id();
  out.changed = r.changed();
  return out;
}

DeleteResult FromProto(const v1::DeleteResponse& r) {
  return DeleteResult{.deleted = r.deleted(),
                      .revision = r.revision(),
                      .store_id = r.store_id()};
}

absl::StatusOr<ListResult> FromProto(const v1::ListResponse& r) {
  ListResult out;
  out.kvs.reserve(r.kvs_size());
  for (const v1::KeyValue& kv : r.kvs()) {
    TSHARE_ASSIGN_OR_RETURN(KeyValue converted, KeyValueFromProto(kv));
    out.kvs.push_back(std::move(converted));
  }
  out.next_page_token = r.next_page_token();
  out.revision = r.revision();
  out.store_id = r.store_id();
  return out;
}

absl::StatusOr<TxnResult> FromProto(const v1::TxnResponse& r) {
  TxnResult out;
  out.succeeded = r.succeeded();
  out.revision = r.revision();
  out.store_id = r.store_id();
  for (const v1::TxnOpResult& result : r.results()) {
    TxnOpResult op;
    switch (result.result_case()) {
      case v1::TxnOpResult::kGet: {
        op.kind = TxnOpResult::Kind::kGet;
        const v1::GetResponse& get = result.get();
        if (get.has_value() &&
            get.value().kind_case() != v1::Value::KIND_NOT_SET) {
          TSHARE_ASSIGN_OR_RETURN(op.kv.value, ValueFromProto(get.value()));
        }
        op.kv.version = get.version();
        op.kv.create_revision = get.create_revision();
        op.kv.mod_revision = get.mod_revision();
        break;
      }
      case v1::TxnOpResult::kSet:
        op.kind = TxnOpResult::Kind::kSet;
        op.kv.version = result.set().version();
        op.kv.mod_revision = result.set().revision();
        op.created = result.set().created();
        break;
      case v1::TxnOpResult::kUpdate: {
        op.kind = TxnOpResult::Kind::kUpdate;
        const v1::UpdateResponse& update = result.update();
        TSHARE_ASSIGN_OR_RETURN(op.kv.value, ValueFromProto(update.value()));
        op.kv.version = update.version();
        op.kv.mod_revision = update.revision();
        op.changed = update.changed();
        break;
      }
      case v1::TxnOpResult::kDelete:
        op.kind = TxnOpResult::Kind::kDelete;
        op.deleted = result.delete_().deleted();
        break;
      case v1::TxnOpResult::RESULT_NOT_SET:
        return absl::InternalError(
            "the server sent a transaction result without a kind");
    }
    out.results.push_back(std::move(op));
  }
  return out;
}

absl::Status OpToUpdateRequest(const Op& op, v1::UpdateRequest* out) {
  TSHARE_RETURN_IF_ERROR(op.status());
  out->set_key(op.key());
  if (op.if_version().has_value()) out->set_if_version(*op.if_version());
  switch (op.kind()) {
    case Op::Kind::kAdd:
      return ValueToProto(op.operand(), out->mutable_add());
    case Op::Kind::kAppend:
      return ValueToProto(op.operand(), out->mutable_append());
    case Op::Kind::kMerge:
      return ValueToProto(op.operand(), out->mutable_merge());
    case Op::Kind::kCompareAndSet:
      TSHARE_RETURN_IF_ERROR(ValueToProto(
          op.operand(), out->mutable_compare_and_set()->mutable_expected()));
      return ValueToProto(op.new_value(),
                          out->mutable_compare_and_set()->mutable_new_value());
    case Op::Kind::kMin:
      return ValueToProto(op.operand(), out->mutable_min());
    case Op::Kind::kMax:
      return ValueToProto(op.operand(), out->mutable_max());
    case Op::Kind::kToggle:
      out->mutable_toggle();
      return absl::OkStatus();
    case Op::Kind::kGet:
    case Op::Kind::kSet:
    case Op::Kind::kDelete:
    case Op::Kind::kDeletePrefix:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("Apply runs the atomic ops (Op::Add, Append, Merge, "
                   "CompareAndSet, Min, Max, "
                   "Toggle); for key \"",
                   op.key(), "\" use Get, Set or Delete, or a transaction"));
}

absl::Status OpToTxnOp(const Op& op, v1::TxnOp* out) {
  TSHARE_RETURN_IF_ERROR(op.status());
  switch (op.kind()) {
    case Op::Kind::kGet:
      if (op.if_version().has_value()) break;
      out->mutable_get()->set_key(op.key());
      return absl::OkStatus();
    case Op::Kind::kSet: {
      v1::SetRequest* set = out->mutable_set();
      set->set_key(op.key());
      if (op.if_version().has_value()) set->set_if_version(*op.if_version());
      return ValueToProto(op.operand(), set->mutable_value());
    }
    case Op::Kind::kDelete: {
      v1::DeleteRequest* del = out->mutable_delete_();
      del->set_key(op.key());
      if (op.if_version().has_value()) del->set_if_version(*op.if_version());
      return absl::OkStatus();
    }
    case Op::Kind::kDeletePrefix:
      if (op.if_version().has_value()) break;
      if (op.key().empty()) {
        return absl::InvalidArgumentError(
            "Op::DeletePrefix needs a non-empty prefix");
      }
      out->mutable_delete_()->set_prefix(op.key());
      return absl::OkStatus();
    default:
      return OpToUpdateRequest(op, out->mutable_update());
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "Op::IfVersion applies to Set, Delete and the atomic ops, not to ",
      op.kind() == Op::Kind::kGet ? "Get" : "DeletePrefix", " (key \"",
      op.key(), "\")"));
}

absl::Status CompareToProto(const Compare& compare, v1::Compare* out) {
  TSHARE_RETURN_IF_ERROR(compare.status());
  out->set_key(compare.key());
  switch (compare.op()) {
    case Compare::Operator::kEqual:
      out->set_operator_(v1::Compare::EQUAL);
      break;
    case Compare::Operator::kNotEqual:
      out->set_operator_(v1::Compare::NOT_EQUAL);
      break;
    case Compare::Operator::kGreater:
      out->set_operator_(v1::Compare::GREATER);
      break;
    case Compare::Operator::kLess:
      out->set_operator_(v1::Compare::LESS);
      break;
  }
  switch (compare.target()) {
    case Compare::Target::kValue:
      return ValueToProto(compare.value(), out->mutable_value());
    case Compare::Target::kVersion:
      out->set_version(compare.number());
      return absl::OkStatus();
    case Compare::Target::kModRevision:
      out->set_mod_revision(compare.number());
      return absl::OkStatus();
    case Compare::Target::kExists:
      out->set_exists(compare.exists());
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

}  // namespace tshare::client::internal
